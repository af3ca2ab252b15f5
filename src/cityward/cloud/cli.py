"""`cityward cloud`: placeholder until the cloud plan lands."""


def register(sub):
    parser = sub.add_parser("cloud", help="plan the segmented cloud network offline")
    parser.set_defaults(func=lambda args: parser.print_help())
