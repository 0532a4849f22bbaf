"""The HTTP front door: LNURL-pay/-withdraw, zap requests, public charger and session pages."""
