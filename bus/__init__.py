"""The city's message bus: the MQTT wire format, named clients and the embedded development broker.

Sector twins publish on it, oracles subscribe to it, the controller commands and watches over it. It
sits below all three (it imports only `core`), so the format a twin writes and the parser an oracle
reads with are one definition. Secure links (QKD-keyed encryption of these payloads) belong here too.
"""
