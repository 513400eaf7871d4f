"""Recommender service: suggests products."""

PRODUCTS = ["kettle", "teapot", "mug"]


def lambda_handler(event, context):
    """Return the products, most relevant first."""
    return {"statusCode": 200, "items": PRODUCTS}
