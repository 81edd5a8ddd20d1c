// A static asset served through the static-asset filter: requesting it replicates nothing.
document.documentElement.classList.add('js')
