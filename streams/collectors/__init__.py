"""Real device and grid collectors: NVML GPUs, ASIC miner APIs, Modbus meters, ERCOT files."""
