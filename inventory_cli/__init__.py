"""inv: the command line for a store's inventory agent."""
