"""Reports for supervisors: calls, tickets and emergencies over time, as tables,
charts (inline SVG, drawn on the server: no chart library, nothing from a CDN) and
CSV/XLSX exports."""
