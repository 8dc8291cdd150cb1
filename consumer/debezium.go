package consumer

// decodeDebezium decodes a Debezium change event of an LMS table.
func decodeDebezium(m Message) (Decoded, error) {
	return Decoded{Type: "debezium"}, undecodable("Debezium decoding is not built yet")
}
