"""A chosen configuration: exported, retrained into a model, and the model applied to new rows."""
