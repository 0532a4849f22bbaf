"""HTTP plumbing shared by the two web front doors (LNURL pages and the cockpit)."""
