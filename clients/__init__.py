"""Example clients of Freigabe, run against the provider in the demo and the flow tests."""
