"""The directory: communities, buildings, rooms, owners and their phone numbers, staff."""
