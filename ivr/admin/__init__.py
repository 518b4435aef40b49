"""The hotline's menus and holidays as an admin sees them: what is in force, reload on
demand, the holiday days edited and imported from the browser."""
