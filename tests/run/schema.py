"""A small Cog OpenAPI schema (as ``cog build`` writes it) shared by the predict tests."""

from __future__ import annotations

SCHEMA = {
    "openapi": "3.0.2",
    "info": {"title": "Cog", "version": "0.1.0"},
    "paths": {},
    "components": {
        "schemas": {
            "Input": {
                "title": "Input",
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"title": "Text", "type": "string", "description": "Text to repeat", "x-order": 0},
                    "count": {
                        "title": "Count",
                        "type": "integer",
                        "default": 1,
                        "minimum": 1,
                        "maximum": 5,
                        "x-order": 1,
                    },
                    "scale": {"title": "Scale", "type": "number", "default": 1.0, "x-order": 2},
                    "loud": {"title": "Loud", "type": "boolean", "default": False, "x-order": 3},
                    "style": {"allOf": [{"$ref": "#/components/schemas/style"}], "default": "plain", "x-order": 4},
                    "tags": {"title": "Tags", "type": "array", "items": {"type": "integer"}, "x-order": 5},
                    "image": {"title": "Image", "type": "string", "format": "uri", "nullable": True, "x-order": 6},
                },
            },
            "style": {"title": "style", "description": "An enumeration.", "enum": ["plain", "fancy"], "type": "string"},
            "Output": {"title": "Output", "type": "string"},
        }
    },
}
