"""Auth service: issues a greeting token."""


def lambda_handler(event, context):
    """Return a fake token for the given user."""
    return {"statusCode": 200, "token": "token-for-" + str(event.get("user", "anonymous"))}
