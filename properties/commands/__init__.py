"""The `moegate` commands, one module each (`verify`, `mutants`, `fixtures`, `presets`, `bench`), and
`common`, what they share. `moegate.properties.cli` builds the parser from them."""
