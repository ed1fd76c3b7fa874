// Placeholder: builds the shim libraries into shims/<arch>/ (issue 3).
