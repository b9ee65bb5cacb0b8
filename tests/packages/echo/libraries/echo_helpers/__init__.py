def describe(text):
    """Lives in libraries/, which UbiOps puts on sys.path."""
    return f"helper saw {text!r}"
