"""qeaims"""
