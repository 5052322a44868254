"""The small, realistic dataset the property examples start from (inserted once, on first run)."""

from __future__ import annotations

# (id, address, city, postcode, monthly_rent, bedrooms, bathrooms, property_type, available)
PROPERTIES: list[tuple[int, str, str, str, int, int, int, str, int]] = [
    (101, "14 Hyde Park Road", "Leeds", "LS6 1AH", 950, 2, 1, "flat", 0),
    (102, "7 Cardigan Lane", "Leeds", "LS4 2LE", 1350, 3, 2, "terraced house", 1),
    (103, "Flat 3, 22 Call Lane", "Leeds", "LS1 6DT", 825, 1, 1, "flat", 1),
    (104, "48 Burton Road", "Manchester", "M20 1HB", 1600, 3, 2, "semi-detached house", 0),
    (105, "Apartment 12, Ancoats Mill", "Manchester", "M4 6DE", 1150, 2, 2, "flat", 1),
    (106, "5 Gloucester Road", "Bristol", "BS7 8AE", 1450, 2, 1, "terraced house", 1),
    (107, "31 Cotham Hill", "Bristol", "BS6 6JY", 2100, 4, 2, "townhouse", 0),
    (108, "Flat 9, 60 Mare Street", "London", "E8 4RT", 2250, 2, 1, "flat", 1),
    (109, "18 Lordship Lane", "London", "SE22 8HN", 3100, 3, 2, "terraced house", 0),
    (110, "2 Marchmont Crescent", "Edinburgh", "EH9 1HN", 1250, 2, 1, "tenement flat", 1),
]

# (property_id, name, email, phone, lease_start, lease_end, monthly_rent)
TENANTS: list[tuple[int, str, str, str, str, str, int]] = [
    (101, "Priya Shah", "priya.shah@example.com", "07700 900101", "2024-09-01", "2025-08-31", 950),
    (101, "Tom Gallagher", "tom.gallagher@example.com", "07700 900102", "2024-09-01", "2025-08-31", 950),
    (104, "Amina Okafor", "amina.okafor@example.com", "07700 900104", "2023-05-01", "2026-04-30", 1600),
    (104, "David Okafor", "david.okafor@example.com", "07700 900105", "2023-05-01", "2026-04-30", 1600),
    (107, "Chen Wei", "chen.wei@example.com", "07700 900107", "2024-01-15", "2026-01-14", 2100),
    (109, "Sophie Laurent", "sophie.laurent@example.com", "07700 900109", "2022-10-01", "2025-09-30", 3100),
    (109, "Marcus Bell", "marcus.bell@example.com", "07700 900110", "2022-10-01", "2025-09-30", 3100),
]

# (property_id, description, priority, status, created_at)
MAINTENANCE: list[tuple[int, str, str, str, str]] = [
    (101, "Kitchen tap drips constantly", "low", "open", "2025-01-06T09:12:00+00:00"),
    (101, "Bathroom extractor fan not working", "medium", "in_progress", "2024-12-18T14:30:00+00:00"),
    (104, "Boiler loses pressure overnight, no hot water", "urgent", "open", "2025-01-09T07:45:00+00:00"),
    (107, "Sash window in back bedroom will not close", "medium", "open", "2025-01-02T16:05:00+00:00"),
    (109, "Damp patch on the hallway ceiling", "high", "in_progress", "2024-12-28T11:20:00+00:00"),
    (109, "Replace smoke alarm battery", "low", "resolved", "2024-11-30T10:00:00+00:00"),
]

# (property_id, visitor_name, starts_at)
VIEWINGS: list[tuple[int, str, str]] = [
    (102, "Hannah Moore", "2030-03-04T17:30:00+00:00"),
    (108, "Ollie Brennan", "2030-03-05T12:00:00+00:00"),
]
