"""The Gradio user interface: the only package that imports gradio. One module per tab. What it
leaves out: every computation (the backend, `playground`): a handler validates, calls, renders."""
