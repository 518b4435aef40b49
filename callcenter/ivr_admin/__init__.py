"""The hotline's menus as an admin sees them: what is in force, reload on demand."""
