"""The example application: prints a greeting."""
import os

print(f"{os.environ.get('GREETING', 'hi')} from runner")
