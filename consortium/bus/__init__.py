"""The live node: aiomqtt adapter, broker launch, node runtime (assembles the pure layers)."""
