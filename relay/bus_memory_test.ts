import { MemoryBus, MemoryBusHub } from "./bus_memory.ts";
import { busContract } from "./bus_contract.ts";

busContract("memory", (n) => {
  const hub = new MemoryBusHub();
  return Promise.resolve(Array.from({ length: n }, () => new MemoryBus(hub)));
});
