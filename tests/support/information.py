"""Request bodies of the information channel."""

from __future__ import annotations

ITEM = {
    "title": "Road repairs on Abai avenue",
    "body": "Resurfacing of Abai avenue between Dostyk and Furmanov starts on Monday.",
    "category": "roads",
    "language": "en",
}

REQUEST = {
    "agency": "almaty-akimat",
    "subject": "Snow clearing schedule",
    "text": "Please provide the snow clearing schedule for the Medeu district this winter.",
    "language": "en",
}
