let version = 1
