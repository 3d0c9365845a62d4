"""Developer tools: run the program under mocks, check it against AWS schemas and the policy pack."""
