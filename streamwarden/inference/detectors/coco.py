"""The 80 COCO class names, in the order YOLO and most COCO exports use."""

COCO_LABELS = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]

#: what a CCTV user acts on: the built-in NanoDet-g's events are for these unless
#: `[inference] classes` says otherwise (COCO also has "bench", "potted plant", ...)
CCTV_CLASSES = ["person", "bicycle", "car", "motorcycle", "bus", "truck", "dog", "cat"]

#: the labels each built-in model (`[inference] model`) can report
BUILTIN_LABELS = {"nanodet": COCO_LABELS, "blazepose": ["person"]}
