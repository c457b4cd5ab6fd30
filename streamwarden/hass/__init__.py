"""Home Assistant over MQTT: discovery messages (`discovery.py`, plain data) and the bridge
that publishes states and pictures and acts on switches (`bridge.py`)."""
