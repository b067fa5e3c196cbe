// make_plan over a loaded model (its tensor table and mmapped bytes) or over hyper-parameters alone.
#include "plan/plan.h"

namespace tailor {

std::vector<TensorDesc> tensors_from_hparams(const HParams& hp, DType stored) {
  std::vector<TensorDesc> out;
  for (const TensorSpec& ts : expected_tensors(hp)) {
    TensorDesc d;
    d.name = ts.name;
    d.dtype = stored;
    d.shape = ts.shape;
    out.push_back(std::move(d));
  }
  return out;
}

Result<Plan> make_plan(const ModelSpec& spec, const DeviceInfo& device, const PlanOptions& options) {
  if (!spec.weights) return invalid_argument(cat(spec.dir, ": the model has no weights opened"));
  std::vector<TensorDesc> tensors;
  // Only the tensors the architecture uses (a checkpoint may carry extras, e.g. rotary buffers).
  for (const TensorSpec& ts : expected_tensors(spec.hp)) {
    const SafeTensor* t = spec.weights->find(ts.name);
    if (!t) return not_found(cat(spec.dir, ": tensor \"", ts.name, "\" is missing"));
    TensorDesc d;
    d.name = t->name;
    d.dtype = t->dtype;
    d.shape = t->shape;
    d.data = t->data;
    tensors.push_back(std::move(d));
  }
  PlanOptions o = options;
  if (o.model_name.empty()) {
    std::string dir = spec.dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const auto slash = dir.find_last_of('/');
    o.model_name = slash == std::string::npos ? dir : dir.substr(slash + 1);
  }
  return make_plan(spec.hp, tensors, device, o);
}

}  // namespace tailor
