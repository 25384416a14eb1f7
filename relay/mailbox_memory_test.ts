import { MemoryMailbox } from "./mailbox_memory.ts";
import { mailboxContract } from "./mailbox_contract.ts";

mailboxContract("memory", (limits) => Promise.resolve(new MemoryMailbox(limits)));
