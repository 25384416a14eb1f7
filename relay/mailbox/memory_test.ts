import { MemoryMailbox } from "./memory.ts";
import { mailboxContract } from "./contract.ts";

mailboxContract("memory", (limits) => Promise.resolve(new MemoryMailbox(limits)));
