"""Small local fake servers for the outside world (Gemini, WhatsApp Graph API), so the real clients run in tests."""
