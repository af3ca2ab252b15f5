"""`cityward audit`: run the control checks on live hosts and report the evidence."""
