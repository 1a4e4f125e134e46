"""Write photo.h: one uint8 RGB photo as a C array, standing in for a camera frame."""
import sys

import numpy as np

source, index, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with np.load(source) as photos:
    key = photos.files[index]  # archive order, as mcugen reads samples
    pixels = photos[key].reshape(-1)
rows = ",\n".join(", ".join(str(int(v)) for v in pixels[i:i + 24]) for i in range(0, pixels.size, 24))
with open(target, "w") as out:
    out.write(f"/* {key} from {source}: {pixels.size} bytes of uint8 RGB (HWC). */\n")
    out.write("#include <stdint.h>\n")
    out.write(f"static const uint8_t photo[{pixels.size}] = {{\n{rows}\n}};\n")
