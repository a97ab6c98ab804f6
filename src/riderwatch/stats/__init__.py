"""The programme's figures for the command centre and station managers."""
