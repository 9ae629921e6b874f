// Typed options of the builder's builtin methods. Names and meanings are the
// keyword arguments of DSL.md §6, spelled the same (snake_case), so a .cnn
// call transcribes one-to-one: `conv2d(x, filters=6, kernel=5, padding=2)`
// is `m.conv2d(x, { filters: 6, kernel: 5, padding: 2 })`. Object literals
// with a misspelt key are rejected by tsc.

import type { Dim } from "../ir/dims.ts";
import type { T } from "./index.ts";

/** An int, or one int per spatial dim. */
export type Ints = number | readonly number[];

/** An int, per-dim ints, per-dim [begin, end] pairs, or a named mode. */
export type Padding<Named extends string = never> = number | readonly number[] | readonly (readonly [number, number])[] | Named;

/** A size in reshape: an integer, -1 (inferred), a symbol name such as "N", or a Dim. */
export type Size = number | string | Dim;

export interface LayerOptions {
  /** The layer's name; parameters become `<name>.weight`, ... (DSL `name=`). */
  readonly name?: string;
}

export interface ConvOptions extends LayerOptions {
  readonly filters: number;
  readonly kernel: Ints;
  readonly stride?: Ints;
  readonly padding?: Padding<"valid" | "same" | "full">;
  readonly dilation?: Ints;
  readonly groups?: number;
  /** false drops the bias; a tensor is used as the bias (tied weights). */
  readonly bias?: boolean | T;
  readonly padding_mode?: "zeros" | "circular";
  /** Flip the kernel: true convolution instead of cross-correlation. */
  readonly flip?: boolean;
  readonly weight?: T;
}

export interface ConvTransposeOptions extends LayerOptions {
  readonly filters: number;
  readonly kernel: Ints;
  readonly stride?: Ints;
  readonly padding?: Padding<"valid">;
  readonly output_padding?: Ints;
  readonly dilation?: Ints;
  readonly groups?: number;
  readonly bias?: boolean | T;
  readonly weight?: T;
}

export interface MaskOptions {
  /** bool, broadcastable to the input: false positions never win a max nor count in a mean. */
  readonly mask?: T;
}

export interface PoolOptions extends MaskOptions {
  readonly window: Ints;
  readonly stride?: Ints;
  readonly padding?: Padding<"valid" | "same">;
  readonly dilation?: Ints;
  readonly ceil_mode?: boolean;
}

export interface AvgPoolOptions extends PoolOptions {
  readonly count_include_pad?: boolean;
}

export interface KMaxPoolOptions extends MaskOptions {
  readonly axis?: number;
}

export interface EmbedOptions extends LayerOptions {
  readonly padding_idx?: number;
  readonly weight?: T;
}

export interface RnnOptions extends LayerOptions {
  readonly hidden: number;
  readonly cell?: "elman" | "lstm" | "gru" | "mgu";
  readonly activation?: "tanh" | "relu";
  readonly direction?: "forward" | "backward" | "bidirectional";
  readonly lengths?: T;
  readonly return?: "sequence" | "last";
  readonly h0?: T;
  readonly c0?: T;
  readonly bias?: boolean;
  readonly weight_ih?: T;
  readonly weight_hh?: T;
  readonly bias_ih?: T;
  readonly bias_hh?: T;
  readonly weight_ih_reverse?: T;
  readonly weight_hh_reverse?: T;
  readonly bias_ih_reverse?: T;
  readonly bias_hh_reverse?: T;
}

export interface DenseOptions extends LayerOptions {
  readonly bias?: boolean | T;
  readonly weight?: T;
}

export interface AxisOptions {
  readonly axis?: number;
}

export interface ReduceOptions {
  /** An axis or a list of axes (negative from the end); all axes when absent. */
  readonly axis?: number | readonly number[];
  readonly keepdims?: boolean;
}

export interface ArgmaxOptions {
  readonly axis: number;
  readonly keepdims?: boolean;
}

export interface BatchnormOptions extends LayerOptions {
  readonly momentum?: number;
  readonly eps?: number;
  readonly weight?: T;
  readonly bias?: T;
  readonly running_mean?: T;
  readonly running_var?: T;
}

export interface LayernormOptions extends LayerOptions {
  readonly axis?: number | readonly number[];
  readonly eps?: number;
  readonly weight?: T;
  readonly bias?: T;
}

export interface CrossEntropyOptions {
  readonly axis?: number;
  readonly mask?: T;
  readonly ignore_index?: number;
}

export interface SliceOptions {
  readonly axis: number;
  readonly start: number;
  readonly end: number;
  readonly step?: number;
}

export interface PadOptions {
  readonly value?: number;
}

export interface UpsampleOptions {
  /** "linear" is linear, bilinear or trilinear by rank ("bilinear"/"trilinear" are accepted too). */
  readonly mode?: "nearest" | "linear" | "bilinear" | "trilinear";
}

export interface FlattenOptions {
  /** First and last axes merged (default 1 and -1). */
  readonly start?: number;
  readonly end?: number;
}

export interface SgdOptions {
  readonly lr: number;
  readonly momentum?: number;
  readonly weight_decay?: number;
}

export interface AdamOptions {
  readonly lr: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly weight_decay?: number;
}

export interface OptimizerOptions {
  readonly sgd: SgdOptions;
  readonly adam: AdamOptions;
}

/** How an explicit parameter starts (DSL `param w: T = init`); default glorot. */
export type Init =
  | "zeros"
  | "ones"
  | "glorot"
  | "he"
  | { readonly kind: "normal"; readonly mean: number; readonly std: number }
  | { readonly kind: "uniform"; readonly lo: number; readonly hi: number };
