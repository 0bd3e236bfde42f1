// phalanx._C.io: phalanx.save / phalanx.load. Conversions only: a Python object tree becomes the
// checkpoint's value tree (tensors streamed to the writer as they are met) and back; the file
// format, atomic writing and validation live in csrc/io.
#include <string>
#include <vector>

#include "bindings/convert.h"
#include "io/checkpoint_reader.h"
#include "io/checkpoint_writer.h"

namespace phalanx::bindings {

namespace {

// Python object -> proto::Value. `keys_` is the path from the root, for tensor names and for
// errors that say where an unsupported value sits.
class TreeEncoder {
 public:
  explicit TreeEncoder(io::CheckpointWriter& writer)
      : writer_(writer), numpy_generic_(py::module_::import("numpy").attr("generic")) {}

  void encode(py::handle obj, proto::Value* out) {
    PHX_CHECK(static_cast<int>(keys_.size()) < io::kMaxTreeDepth, ValueError,
              "phalanx.save: objects nested deeper than ", io::kMaxTreeDepth, " levels at ",
              where(), " (does a container contain itself?)");
    if (obj.is_none()) {
      out->set_none(true);
    } else if (PyBool_Check(obj.ptr())) {
      out->set_bool_value(obj.ptr() == Py_True);
    } else if (PyLong_Check(obj.ptr())) {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
      if (overflow) {
        auto digits = py::reinterpret_steal<py::object>(PyNumber_ToBase(obj.ptr(), 10));
        if (!digits) throw py::error_already_set();
        out->set_big_int(digits.cast<std::string>());
      } else {
        out->set_int_value(v);
      }
    } else if (PyFloat_Check(obj.ptr())) {
      out->set_float_value(PyFloat_AS_DOUBLE(obj.ptr()));
    } else if (PyUnicode_Check(obj.ptr())) {
      out->set_str_value(obj.cast<std::string>());
    } else if (PyBytes_Check(obj.ptr())) {
      out->set_bytes_value(obj.cast<std::string>());
    } else if (py::isinstance<Tensor>(obj)) {
      Tensor t = obj.cast<Tensor>();
      std::string name = tensor_name();
      py::gil_scoped_release no_gil;  // file IO: let other Python threads run
      out->set_tensor_id(writer_.add_tensor(name, t));
    } else if (PyDict_Check(obj.ptr())) {
      // items() rather than PyDict_Next: an OrderedDict's order is its own, not its dict's.
      proto::ValueDict* dict = out->mutable_dict_value();
      for (py::handle item : obj.attr("items")()) {
        py::tuple kv = py::reinterpret_borrow<py::tuple>(item);
        proto::DictEntry* entry = dict->add_entries();
        encode_key(kv[0], entry);
        keys_.push_back(kv[0]);
        encode(kv[1], entry->mutable_value());
        keys_.pop_back();
      }
    } else if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
      proto::ValueList* list =
          PyList_Check(obj.ptr()) ? out->mutable_list_value() : out->mutable_tuple_value();
      int64_t i = 0;
      for (py::handle item : obj) {
        keys_.push_back(py::int_(i++));
        encode(item, list->add_items());
        keys_.pop_back();
      }
    } else if (py::isinstance(obj, numpy_generic_)) {
      encode(obj.attr("item")(), out);  // numpy scalars load back as Python numbers
    } else {
      unsupported(obj);
    }
  }

 private:
  void encode_key(py::handle key, proto::DictEntry* entry) {
    if (PyUnicode_Check(key.ptr())) {
      entry->set_str_key(key.cast<std::string>());
      return;
    }
    // bool keys are refused rather than silently loaded back as 0 and 1.
    const bool is_int = PyLong_Check(key.ptr()) && !PyBool_Check(key.ptr());
    int overflow = 0;
    long long v = is_int ? PyLong_AsLongLongAndOverflow(key.ptr(), &overflow) : 0;
    PHX_CHECK(is_int && !overflow, TypeError, "phalanx.save: dict key ",
              py::repr(key).cast<std::string>(), " of type '", type_name(key), "' at ", where(),
              " is not supported; keys must be str or int (within int64)");
    entry->set_int_key(v);
  }

  [[noreturn]] void unsupported(py::handle obj) const {
    std::string hint;
    if (type_name(obj) == "numpy.ndarray") hint = "; convert arrays with phalanx.from_numpy";
    throw TypeError(detail::cat(
        "phalanx.save: can't save a value of type '", type_name(obj), "' at ", where(),
        ": supported are tensors, dict, list, tuple, str, bytes, int, float, bool and None "
        "(phalanx never pickles)",
        hint));
  }

  static std::string type_name(py::handle obj) {
    py::handle type = py::type::handle_of(obj);
    std::string module = py::str(type.attr("__module__"));
    std::string name = py::str(type.attr("__qualname__"));
    return module == "builtins" ? name : module + "." + name;
  }

  std::string where() const {
    if (keys_.empty()) return "the top level";
    std::string s = "obj";
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (keys_.size() > 12 && i == 4) {  // a runaway (cyclic) path: its two ends say enough
        s += "...";
        i = keys_.size() - 6;
      }
      s += "[" + py::repr(keys_[i]).cast<std::string>() + "]";
    }
    return s;
  }

  std::string tensor_name() const {
    std::string s;
    for (const auto& k : keys_) s += (s.empty() ? "" : "/") + py::str(k).cast<std::string>();
    return s;
  }

  io::CheckpointWriter& writer_;
  py::object numpy_generic_;
  std::vector<py::object> keys_;
};

py::object decode(const proto::Value& v, const std::vector<py::object>& tensors) {
  switch (v.kind_case()) {
    case proto::Value::kBoolValue:
      return py::bool_(v.bool_value());
    case proto::Value::kIntValue:
      return py::int_(v.int_value());
    case proto::Value::kFloatValue:
      return py::float_(v.float_value());
    case proto::Value::kStrValue:
      return py::str(v.str_value());
    case proto::Value::kBytesValue:
      return py::bytes(v.bytes_value());
    case proto::Value::kTensorId:
      return tensors[v.tensor_id()];
    case proto::Value::kBigInt:
      return py::reinterpret_steal<py::object>(PyLong_FromString(v.big_int().c_str(), nullptr, 10));
    case proto::Value::kListValue: {
      py::list out;
      for (const auto& item : v.list_value().items()) out.append(decode(item, tensors));
      return std::move(out);
    }
    case proto::Value::kTupleValue: {
      py::tuple out(v.tuple_value().items_size());
      size_t i = 0;
      for (const auto& item : v.tuple_value().items()) out[i++] = decode(item, tensors);
      return std::move(out);
    }
    case proto::Value::kDictValue: {
      py::dict out;
      for (const auto& e : v.dict_value().entries()) {
        py::object key =
            e.has_str_key() ? py::object(py::str(e.str_key())) : py::object(py::int_(e.int_key()));
        out[key] = decode(e.value(), tensors);
      }
      return std::move(out);
    }
    default:
      return py::none();
  }
}

}  // namespace

void init_io(py::module_& m) {
  py::module_ sub = m.def_submodule("io", "Checkpoint files (csrc/io)");
  sub.def(
      "save",
      [](py::handle obj, const std::string& path, uint64_t chunk_bytes, bool named_temp) {
        io::CheckpointWriter writer(
            path, chunk_bytes,
            named_temp ? io::AtomicFile::Temp::kNamed : io::AtomicFile::Temp::kAnonymous);
        proto::Value tree;
        TreeEncoder(writer).encode(obj, &tree);
        py::gil_scoped_release no_gil;
        writer.commit(tree);
      },
      py::arg("obj"), py::arg("path"), py::arg("chunk_bytes") = io::kDefaultChunkBytes,
      py::arg("named_temp") = false);

  sub.def(
      "load",
      [](const std::string& path) {
        io::LoadedCheckpoint ckpt;
        {
          py::gil_scoped_release no_gil;
          ckpt = io::read_checkpoint(path);
        }
        std::vector<py::object> tensors;  // one Python object per id: shared tensors stay shared
        for (const Tensor& t : ckpt.tensors) tensors.push_back(py::cast(t));
        return decode(ckpt.tree, tensors);
      },
      py::arg("path"));
}

}  // namespace phalanx::bindings
