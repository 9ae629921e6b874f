// The simplification passes, in the order they run: constant folding, then
// algebraic identities (which read constants through views, so a folded
// `reshape(const 1)` and an unfolded one both count as 1), then CSE (which
// merges the constants and duplicates the first two leave), then DCE (which
// removes what nobody reads, the backward graph's unused gradients included).

import type { Pass } from "../pipeline.ts";
import { csePass } from "./cse.ts";
import { dcePass } from "./dce.ts";
import { foldPass } from "./fold.ts";
import { identitiesPass } from "./identities.ts";

export const SIMPLIFY_PASSES: readonly Pass[] = [foldPass, identitiesPass, csePass, dcePass];

export { eliminateCommonSubexpressions } from "./cse.ts";
export { eliminateDeadCode } from "./dce.ts";
export { FOLD_MAX_ELEMENTS, foldConstants } from "./fold.ts";
export { applyIdentities } from "./identities.ts";
