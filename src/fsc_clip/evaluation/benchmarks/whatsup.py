"""What'sUp (amitakamath/whatsup_vlms): spatial prepositions, 6 subsets, "individual accuracy".

Source: github.com/amitakamath/whatsup_vlms @ 7c1f2550eace32e7b8c77de5a792347c402960d1
(``dataset_zoo/aro_datasets.py``: ``Controlled_Images``, ``COCO_QA``, ``VG_QA``; ``argmax == 0``).

Layout under ``<data_root>/whatsup/``: ``controlled_images_dataset.json`` + ``controlled_images/``,
``controlled_clevr_dataset.json`` + ``controlled_clevr/`` (records ``{image_path, caption_options}``, first
option correct; the image is looked up by file name in its folder), ``coco_qa_{one,two}_obj.json`` +
``val2017/<id:012d>.jpg`` and ``vg_qa_{one,two}_obj.json`` + ``vg_images/<id>.jpg`` (records
``[image_id, true_caption, false_caption]``). The benchmark column is the mean of the 6 accuracies.
"""

from __future__ import annotations

from pathlib import Path

from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, find_image, read_json

CONTROLLED = {"WhatsUp_A": ("controlled_images_dataset.json", "controlled_images"),
              "WhatsUp_B": ("controlled_clevr_dataset.json", "controlled_clevr")}  # fmt: skip
QA = {"COCO_QA_ONE": ("coco_qa_one_obj.json", "val2017", "{:012d}"),
      "COCO_QA_TWO": ("coco_qa_two_obj.json", "val2017", "{:012d}"),
      "VG_QA_ONE": ("vg_qa_one_obj.json", "vg_images", "{}"),
      "VG_QA_TWO": ("vg_qa_two_obj.json", "vg_images", "{}")}  # fmt: skip


@BENCHMARKS.register("whatsup")
class WhatsUp(Benchmark):
    name = "whatsup"
    task = IMAGE_TO_TEXT
    description = "What'sUp: spatial relations; controlled A/B (4 options) + COCO/VG QA one/two objects (2 options)"
    expected_files = (*(f for f, _ in CONTROLLED.values()), *(f for f, _, _ in QA.values()))
    obtain = "Download the What'sUp jsons and image folders (gdown ids in whatsup_vlms/dataset_zoo/aro_datasets.py)."
    sub_scores = (*CONTROLLED, *QA)

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        items = []
        for subset, (file, folder) in CONTROLLED.items():
            for i, rec in enumerate(read_json(root / file, self.name)):
                name = Path(field(rec, "image_path", root / file, i, self.name)).name
                path = self.require(root / folder / name)
                options = list(field(rec, "caption_options", root / file, i, self.name))
                items.append(ImageToTextItem(ImageRef(path), options, 0, subset))
        for subset, (file, folder, fmt) in QA.items():
            for i, rec in enumerate(read_json(root / file, self.name)):
                if not isinstance(rec, list) or len(rec) != 3:
                    raise SchemaError(
                        f"{self.name}: {root / file}: record {i} is {rec!r:.80}, expected "
                        "[image_id, true_caption, false_caption]. Re-download it (see `fsc-clip list benchmarks`)."
                    )
                image_id, true_caption, false_caption = rec
                stem = fmt.format(int(image_id)) if fmt != "{}" else str(image_id)
                found = find_image(root / folder, stem)
                ref = ImageRef(self.require(found or root / folder / f"{stem}.jpg"))
                items.append(ImageToTextItem(ref, [true_caption, false_caption], 0, subset))
        return items
