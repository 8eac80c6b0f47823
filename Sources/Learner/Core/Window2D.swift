import CLearner
import Foundation

/// A height × width pair (kernel size, stride, dilation). An integer literal means the same
/// value for both: `stride: 2`.
public struct Size2D: Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    public init(integerLiteral value: Int) { self.init(value, value) }

    public var description: String { height == width ? "\(height)" : "(\(height), \(width))" }
}

/// Zero padding of a 2-D window, per side.
///
/// `.valid` pads nothing. `.same` pads so that the output is ⌈input / stride⌉ (TensorFlow's rule;
/// at stride 1 the output has the input's size and the padding equals PyTorch's `"same"`): the
/// total max((out − 1)·s + d·(k − 1) + 1 − in, 0) is split with the odd element at the bottom/right.
/// An integer literal pads every side by that amount, as PyTorch's `padding=1`.
public enum Padding2D: Hashable, Sendable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    case valid
    case same
    case explicit(top: Int, bottom: Int, left: Int, right: Int)

    public init(integerLiteral value: Int) { self = .explicit(top: value, bottom: value, left: value, right: value) }

    /// Symmetric padding: `height` rows above and below, `width` columns left and right.
    public static func symmetric(_ size: Size2D) -> Padding2D {
        .explicit(top: size.height, bottom: size.height, left: size.width, right: size.width)
    }

    public var description: String {
        switch self {
        case .valid: return "valid"
        case .same: return "same"
        case let .explicit(top, bottom, left, right):
            return top == bottom && left == right ? Size2D(top, left).description : "(\(top), \(bottom), \(left), \(right))"
        }
    }

    /// (before, after) along one axis of `input` elements.
    func resolve(input: Int, kernel: Int, stride: Int, dilation: Int, vertical: Bool) -> (Int, Int) {
        switch self {
        case .valid: return (0, 0)
        case .same:
            let out = (input + stride - 1) / stride
            let total = Swift.max((out - 1) * stride + dilation * (kernel - 1) + 1 - input, 0)
            return (total / 2, total - total / 2)
        case let .explicit(top, bottom, left, right):
            return vertical ? (top, bottom) : (left, right)
        }
    }
}

/// The geometry of a sliding 2-D window over NCHW activations: one image's [channels, height,
/// width], the kernel, stride, per-side padding, dilation and the output size
/// OH = ⌊(H + top + bottom − d·(kH − 1) − 1) / s⌋ + 1 (likewise OW).
public struct Window2D: Hashable, Sendable {
    public internal(set) var channels: Int
    public let height: Int, width: Int
    public let kernel: Size2D, stride: Size2D, dilation: Size2D
    public let padTop: Int, padBottom: Int, padLeft: Int, padRight: Int
    public let outHeight: Int, outWidth: Int

    /// Resolves `padding` for an input of `channels` × `height` × `width`; nil when the window
    /// does not fit (an output dimension would be < 1) or a size is not positive.
    public init?(
        channels: Int, height: Int, width: Int, kernel: Size2D, stride: Size2D, padding: Padding2D,
        dilation: Size2D
    ) {
        guard kernel.height > 0, kernel.width > 0, stride.height > 0, stride.width > 0,
            dilation.height > 0, dilation.width > 0, channels > 0, height > 0, width > 0
        else { return nil }
        let (t, b) = padding.resolve(input: height, kernel: kernel.height, stride: stride.height, dilation: dilation.height, vertical: true)
        let (l, r) = padding.resolve(input: width, kernel: kernel.width, stride: stride.width, dilation: dilation.width, vertical: false)
        guard t >= 0, b >= 0, l >= 0, r >= 0 else { return nil }
        let spanH = dilation.height * (kernel.height - 1) + 1, spanW = dilation.width * (kernel.width - 1) + 1
        let oh = (height + t + b - spanH) / stride.height + 1
        let ow = (width + l + r - spanW) / stride.width + 1
        guard height + t + b >= spanH, width + l + r >= spanW, oh > 0, ow > 0 else { return nil }
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        padTop = t
        padBottom = b
        padLeft = l
        padRight = r
        outHeight = oh
        outWidth = ow
    }

    /// The same window over another channel count (one group of a grouped convolution).
    func withChannels(_ c: Int) -> Window2D {
        var copy = self
        copy.channels = c
        return copy
    }

    var inputPlane: Int { height * width }
    var outputPlane: Int { outHeight * outWidth }
    /// Rows of the im2col matrix: channels · kH · kW.
    var columnRows: Int { channels * kernel.height * kernel.width }

    /// Whether im2col is the identity (1×1 kernel, stride 1, no padding): the image is its own column matrix.
    var isPointwise: Bool {
        kernel == Size2D(1, 1) && stride == Size2D(1, 1) && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0
    }

    /// The C kernels' view of this geometry.
    var c: tl_window2d {
        tl_window2d(
            channels: Int32(channels), height: Int32(height), width: Int32(width),
            kernel_h: Int32(kernel.height), kernel_w: Int32(kernel.width),
            stride_h: Int32(stride.height), stride_w: Int32(stride.width),
            pad_top: Int32(padTop), pad_bottom: Int32(padBottom), pad_left: Int32(padLeft), pad_right: Int32(padRight),
            dilation_h: Int32(dilation.height), dilation_w: Int32(dilation.width),
            out_h: Int32(outHeight), out_w: Int32(outWidth))
    }
}

/// A 2-D convolution over a batch: input [batch, window.channels, H, W], weight
/// [outChannels, window.channels / groups, kH, kW], output [batch, outChannels, OH, OW].
public struct Conv2DGeometry: Hashable, Sendable {
    public let batch: Int
    public let window: Window2D
    public let outChannels: Int
    public let groups: Int

    public init(batch: Int, window: Window2D, outChannels: Int, groups: Int) {
        self.batch = batch
        self.window = window
        self.outChannels = outChannels
        self.groups = groups
    }

    var inputShape: [Int] { [batch, window.channels, window.height, window.width] }
    var outputShape: [Int] { [batch, outChannels, window.outHeight, window.outWidth] }
    var weightShape: [Int] { [outChannels, window.channels / groups, window.kernel.height, window.kernel.width] }
    /// The window of one group's input channels.
    var groupWindow: Window2D { window.withChannels(window.channels / groups) }
}

extension Window2D {
    /// The offset table of the CPU's gathers for a chunk of `images` images: for im2col and max
    /// pooling (tl_im2col_table: each tap's input element per output position, −1 for padding), or
    /// with `inverse` for col2im (tl_col2im_table). It depends on the geometry alone, so it is
    /// built once and kept: a training step asks for the same few tables at every step.
    func gatherTable(images: Int = 1, inverse: Bool = false) -> [Int32] {
        GatherTableCache.shared.table(self, images: images, inverse: inverse)
    }
}

/// The gather tables made so far, by geometry (shared by the replica threads of data parallelism).
// @unchecked Sendable: `tables` is only read and written with `lock` held; the tables handed
// out are arrays, copied on write.
private final class GatherTableCache: @unchecked Sendable {
    static let shared = GatherTableCache()
    private struct Key: Hashable {
        let window: Window2D
        let images: Int
        let inverse: Bool
    }
    private let lock = NSLock()
    private var tables: [Key: [Int32]] = [:]
    /// A model has a few dozen geometries; past this many the cache starts over.
    private let capacity = 256

    func table(_ window: Window2D, images: Int, inverse: Bool) -> [Int32] {
        let key = Key(window: window, images: images, inverse: inverse)
        if let table = lock.withLock({ tables[key] }) { return table }
        var w = window.c
        let size = inverse ? tl_col2im_table_size(&w, images) : tl_im2col_table_size(&w, images)
        let table = [Int32](unsafeUninitializedCapacity: size) { buffer, filled in
            if inverse { tl_col2im_table(&w, images, buffer.baseAddress!) } else { tl_im2col_table(&w, images, buffer.baseAddress!) }
            filled = buffer.count
        }
        lock.withLock {
            if tables.count >= capacity { tables.removeAll() }
            tables[key] = table
        }
        return table
    }
}

extension Conv2DGeometry {
    /// Strides of a convolution's buffers in elements, as every backend's im2col + GEMM
    /// schedule walks them: per image and per group.
    struct Layout {
        /// Output pixels per channel (OH·OW).
        let plane: Int
        /// Rows of one group's column matrix (C/groups·kH·kW).
        let rows: Int
        let outPerGroup: Int
        /// Floats of one input image, one output image, one group's input channels, one image's columns.
        let inImage, outImage, groupInput, colImage: Int
    }

    var layout: Layout {
        Layout(
            plane: window.outputPlane, rows: window.columnRows / groups, outPerGroup: outChannels / groups,
            inImage: window.channels * window.inputPlane, outImage: outChannels * window.outputPlane,
            groupInput: window.channels / groups * window.inputPlane, colImage: window.columnRows * window.outputPlane)
    }
}
