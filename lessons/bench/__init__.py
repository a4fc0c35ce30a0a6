"""``wslab bench``'s measurements, apart from the kit: fan-out strategies side by side
(``bench``, its clients in ``fanout``, the corked variant in ``corked``), descriptors and
memory per connection (``capacity``), and uvicorn's WebSocket implementations compared
(``implementations``). Each prints ratios measured in one run, on loopback, bounded."""
