// A writer worker that dies while loading (mailbox_test.ts).
throw new Error("this writer fails to start");
