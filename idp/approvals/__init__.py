"""Login approvals: a request shown on the user's device, answered there with
the number from the browser and user verification."""
