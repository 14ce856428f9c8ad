#include "engine/model.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <string>

#include "engine/matmul.h"
#include "engine/quant/quant.h"

namespace llmsync::engine {
namespace {

std::string Shape(std::int64_t d0, std::int64_t d1) {
  // Appended piece by piece: g++ 12 warns falsely (-Wrestrict) on "[" + std::string chains.
  std::string s = "[";
  s += std::to_string(d0);
  s += ", ";
  s += std::to_string(d1);
  s += "]";
  return s;
}

std::string Shape1(std::int64_t d0) {
  std::string s = "[";
  s += std::to_string(d0);
  s += "]";
  return s;
}

std::string SupportedTypes() { return "f32, f16, bf16, q8_0, q4_0, q4_K, q6_K"; }

// Looks tensors up by name and checks them against what the hyperparameters imply.
class TensorLoader {
 public:
  explicit TensorLoader(const GgufFile& file) : file_(file) {}

  const GgufTensorInfo* Find(const std::string& name) const { return file_.FindTensor(name); }

  // A matrix of `rows` rows of `cols` elements: GGUF dims [cols, rows] (trailing 1s allowed).
  Status Matrix(const std::string& name, std::int64_t rows, std::int64_t cols, const char* meaning,
                WeightMatrix* out) const {
    const GgufTensorInfo* t = Find(name);
    if (t == nullptr) return Status::InvalidArgument("model: tensor '" + name + "' is missing");
    if (!HasShape(*t, cols, rows)) {
      return Status::InvalidArgument("model: tensor '" + name + "' has shape " + t->ShapeString() +
                                     ", expected " + Shape(cols, rows) + " (" + meaning + ")");
    }
    LLMSYNC_RETURN_IF_ERROR(CheckType(*t));
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t row_bytes, RowBytes(t->type, static_cast<std::uint64_t>(cols)));
    *out = WeightMatrix{t->type, t->data.data(), rows, cols, row_bytes};
    return Status::Ok();
  }

  // A vector of n elements converted to f32. When `optional` and absent, leaves *out empty.
  Status Vector(const std::string& name, std::int64_t n, const char* meaning, bool optional,
                std::vector<float>* out) const {
    const GgufTensorInfo* t = Find(name);
    if (t == nullptr) {
      if (optional) return Status::Ok();
      return Status::InvalidArgument("model: tensor '" + name + "' is missing");
    }
    if (!HasShape(*t, n, 1)) {
      return Status::InvalidArgument("model: tensor '" + name + "' has shape " + t->ShapeString() +
                                     ", expected " + Shape1(n) + " (" + meaning + ")");
    }
    LLMSYNC_RETURN_IF_ERROR(CheckType(*t));
    out->assign(static_cast<std::size_t>(n), 0.0f);
    DequantizeRow(t->type, t->data.data(), out->data(), n);
    return Status::Ok();
  }

 private:
  static bool HasShape(const GgufTensorInfo& t, std::int64_t d0, std::int64_t d1) {
    if (t.dims.empty() || t.dims[0] != d0) return false;
    if ((t.dims.size() >= 2 ? t.dims[1] : 1) != d1) return false;
    for (std::size_t i = 2; i < t.dims.size(); ++i) {
      if (t.dims[i] != 1) return false;
    }
    return true;
  }

  static Status CheckType(const GgufTensorInfo& t) {
    if (IsComputeSupported(t.type)) return Status::Ok();
    return Status::Unimplemented(
        "model: tensor '" + std::string(t.name) + "' has type " + std::string(GgmlTypeName(t.type)) +
        ", which the native engine does not support (supported: " + SupportedTypes() + ")");
  }

  const GgufFile& file_;
};

}  // namespace

Result<std::unique_ptr<Model>> Model::Open(Env* env, const std::string& path, Placement placement) {
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(env, path));
  auto model = FromGguf(std::move(file));
  if (!model.IsOk()) return model.GetStatus().WithContext(path);
  if (placement == Placement::kHugePageCopy && !WeightsForcedMapped()) (*model)->CopyMatrices(path);
  return model;
}

void Model::CopyMatrices(const std::string& path) {
  // Every matrix the forward pass streams. The token embedding is only gathered row by row, so it
  // stays mapped unless it doubles as the output matrix (and then it keeps the rows layout).
  std::vector<WeightMatrix*> matrices;
  matrices.push_back(tied_output_ ? &token_embd_ : &output_);
  for (LayerWeights& l : layers_) {
    for (WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) matrices.push_back(m);
  }
  const auto layout_of = [&](const WeightMatrix* m) {
    return m == &token_embd_ ? WeightLayout::kRows : PreferredLayout(m->type);
  };
  const auto bytes_of = [&](const WeightMatrix* m) -> std::uint64_t {
    if (layout_of(m) == WeightLayout::kInterleaved16)
      return static_cast<std::uint64_t>(InterleavedBytes(m->rows, m->cols));
    return m->row_bytes * static_cast<std::uint64_t>(m->rows);
  };
  std::uint64_t total = 0;
  for (const WeightMatrix* m : matrices) total += (bytes_of(m) + 63) / 64 * 64;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // the mapped weights serve as they are
  if (resident_.Reserve(total)) {
    const std::uint8_t* file_start = file_->FileBytes().data();
    for (WeightMatrix* m : matrices) {
      const auto offset = static_cast<std::uint64_t>(m->data - file_start);
      const WeightLayout layout = layout_of(m);
      const std::uint8_t* copy = layout == WeightLayout::kInterleaved16
                                     ? resident_.ReadInterleavedQ4_0(fd, offset, m->rows, m->cols)
                                     : resident_.Read(fd, offset, bytes_of(m));
      if (copy == nullptr) break;  // the rest stay mapped; both kinds of matrix compute the same
      m->data = copy;
      m->layout = layout;
    }
    if (tied_output_) output_.data = token_embd_.data;
  }
  ::close(fd);
}

Result<std::unique_ptr<Model>> Model::FromGguf(std::unique_ptr<GgufFile> file) {
  auto model = std::make_unique<Model>(Token{});
  model->file_ = std::move(file);
  LLMSYNC_RETURN_IF_ERROR(model->Load());
  return model;
}

Status Model::Load() {
  LLMSYNC_ASSIGN_OR_RETURN(hparams_, ReadHparams(*file_));
  ModelHparams& hp = hparams_;
  TensorLoader loader(*file_);

  const GgufTensorInfo* embd = loader.Find("token_embd.weight");
  if (embd == nullptr) return Status::InvalidArgument("model: tensor 'token_embd.weight' is missing");
  if (embd->dims.size() < 2 || embd->dims[1] < 1 || embd->dims[1] > (std::int64_t{1} << 31) - 1) {
    return Status::InvalidArgument("model: tensor 'token_embd.weight' has shape " + embd->ShapeString() +
                                   ", expected [n_embd, n_vocab]");
  }
  hp.n_vocab = embd->dims[1];
  std::string arch(ModelArchName(hp.arch));
  if (auto v = file_->GetUint(arch + ".vocab_size");
      v.IsOk() && *v != static_cast<std::uint64_t>(hp.n_vocab)) {
    return Status::InvalidArgument("model: " + arch + ".vocab_size " + std::to_string(*v) +
                                   " differs from the rows of token_embd.weight " +
                                   std::to_string(hp.n_vocab));
  }
  LLMSYNC_RETURN_IF_ERROR(
      loader.Matrix("token_embd.weight", hp.n_vocab, hp.n_embd, "n_embd, n_vocab", &token_embd_));
  LLMSYNC_RETURN_IF_ERROR(loader.Vector("output_norm.weight", hp.n_embd, "n_embd", false, &output_norm_));
  tied_output_ = loader.Find("output.weight") == nullptr;
  if (tied_output_) {
    output_ = token_embd_;
  } else {
    LLMSYNC_RETURN_IF_ERROR(
        loader.Matrix("output.weight", hp.n_vocab, hp.n_embd, "n_embd, n_vocab", &output_));
  }
  if (hp.arch == ModelArch::kLlama) {
    LLMSYNC_RETURN_IF_ERROR(
        loader.Vector("rope_freqs.weight", hp.n_rot / 2, "n_rot / 2", true, &rope_freq_factors_));
    for (float f : rope_freq_factors_) {
      if (!(std::isfinite(f) && f > 0.0f)) {
        return Status::InvalidArgument(
            "model: rope_freqs.weight holds a factor that is not a positive number");
      }
    }
  }

  layers_.resize(static_cast<std::size_t>(hp.n_layer));
  for (std::int64_t i = 0; i < hp.n_layer; ++i) {
    LayerWeights& l = layers_[static_cast<std::size_t>(i)];
    std::string p = "blk." + std::to_string(i) + ".";
    LLMSYNC_RETURN_IF_ERROR(loader.Vector(p + "attn_norm.weight", hp.n_embd, "n_embd", false, &l.attn_norm));
    LLMSYNC_RETURN_IF_ERROR(
        loader.Matrix(p + "attn_q.weight", hp.QDim(), hp.n_embd, "n_embd, n_head * head_dim", &l.wq));
    LLMSYNC_RETURN_IF_ERROR(
        loader.Matrix(p + "attn_k.weight", hp.KvDim(), hp.n_embd, "n_embd, n_head_kv * head_dim", &l.wk));
    LLMSYNC_RETURN_IF_ERROR(
        loader.Matrix(p + "attn_v.weight", hp.KvDim(), hp.n_embd, "n_embd, n_head_kv * head_dim", &l.wv));
    LLMSYNC_RETURN_IF_ERROR(
        loader.Matrix(p + "attn_output.weight", hp.n_embd, hp.QDim(), "n_head * head_dim, n_embd", &l.wo));
    if (hp.qkv_bias) {
      LLMSYNC_RETURN_IF_ERROR(loader.Vector(p + "attn_q.bias", hp.QDim(), "n_head * head_dim", false, &l.bq));
      LLMSYNC_RETURN_IF_ERROR(
          loader.Vector(p + "attn_k.bias", hp.KvDim(), "n_head_kv * head_dim", false, &l.bk));
      LLMSYNC_RETURN_IF_ERROR(
          loader.Vector(p + "attn_v.bias", hp.KvDim(), "n_head_kv * head_dim", false, &l.bv));
    }
    if (hp.qk_norm) {
      LLMSYNC_RETURN_IF_ERROR(
          loader.Vector(p + "attn_q_norm.weight", hp.head_dim, "head_dim", false, &l.q_norm));
      LLMSYNC_RETURN_IF_ERROR(
          loader.Vector(p + "attn_k_norm.weight", hp.head_dim, "head_dim", false, &l.k_norm));
    }
    LLMSYNC_RETURN_IF_ERROR(loader.Vector(p + "ffn_norm.weight", hp.n_embd, "n_embd", false, &l.ffn_norm));
    LLMSYNC_RETURN_IF_ERROR(
        loader.Matrix(p + "ffn_gate.weight", hp.n_ff, hp.n_embd, "n_embd, n_ff", &l.w_gate));
    LLMSYNC_RETURN_IF_ERROR(loader.Matrix(p + "ffn_up.weight", hp.n_ff, hp.n_embd, "n_embd, n_ff", &l.w_up));
    LLMSYNC_RETURN_IF_ERROR(
        loader.Matrix(p + "ffn_down.weight", hp.n_embd, hp.n_ff, "n_ff, n_embd", &l.w_down));
  }
  return Status::Ok();
}

}  // namespace llmsync::engine
