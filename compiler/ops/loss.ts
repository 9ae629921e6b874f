// placeholder: being written
import type { BuiltinDef, OpDef } from "./op.ts";
export const ops: OpDef[] = [];
export const builtins: BuiltinDef[] = [];
