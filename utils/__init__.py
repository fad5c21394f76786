"""Shared helpers. Importing this package first (before paddle) silences the warning Paddle 3.3
prints at import on machines without ccache, which would otherwise precede every one-line error."""
import warnings

warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
