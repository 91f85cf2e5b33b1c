"""Services of the runtime: transport, directives, controllers and leaves."""
