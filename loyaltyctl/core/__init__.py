"""The pure core: values, the program, records, rules and the posting engine. No I/O."""
