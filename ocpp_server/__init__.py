"""The OCPP-J central system shared by every charge-point agent."""
