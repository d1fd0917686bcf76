"""The ground floor: helpers every layer may use (errors caused by the user's input, atomic
file writes, image conversion). It imports nothing of the project."""
