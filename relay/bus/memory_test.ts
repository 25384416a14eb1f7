import { MemoryBus, MemoryBusHub } from "./memory.ts";
import { busContract } from "./contract.ts";

busContract("memory", (n) => {
  const hub = new MemoryBusHub();
  return Promise.resolve(Array.from({ length: n }, () => new MemoryBus(hub)));
});
