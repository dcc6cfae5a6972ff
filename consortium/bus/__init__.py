"""The transport: the checked aiomqtt adapter, topics, broker launch (embedded amqtt, mosquitto with its config, external URLs) and where a client connects (endpoint)."""
