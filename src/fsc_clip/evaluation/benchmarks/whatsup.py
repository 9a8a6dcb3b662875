"""What'sUp (amitakamath/whatsup_vlms): spatial prepositions, 6 subsets, "individual accuracy".

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
from fsc_clip.evaluation.benchmarks._common import find_image, read_json

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
            for rec in read_json(root / file, self.name):
                path = self.require(root / folder / Path(rec["image_path"]).name)
                items.append(ImageToTextItem(ImageRef(path), list(rec["caption_options"]), 0, subset))
        for subset, (file, folder, fmt) in QA.items():
            for image_id, true_caption, false_caption in read_json(root / file, self.name):
                stem = fmt.format(int(image_id)) if fmt != "{}" else str(image_id)
                path = find_image(root / folder, stem)
                ref = ImageRef(self.require(path or root / folder / f"{stem}.jpg"))
                items.append(ImageToTextItem(ref, [true_caption, false_caption], 0, subset))
        return items
